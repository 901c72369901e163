# One role per job, each allowed exactly what that job does to S3 (tests/infra checks every
# request of a full pipeline run against these statements, and every statement against the
# requests). The lake's root is the lake bucket's root: <layer>/<source>/<table>/ for tables,
# meta/bronze_batches/ for the bronze batches' claims, _leases/<job>/<run id>/<version>.json
# for the leases of the runs of each job and _leases/<job>/_epochs/ for their epochs.
#
# Roles are assumed by the jobs' Kubernetes service accounts (infra/k8s) through EKS IRSA:
# lake-<job> for a pod that runs one job (Airflow's KubernetesPodOperator, the maintenance
# CronJob), and lake-pipeline for the pipeline CronJob, whose bronze, silver and gold
# containers each present their own role (AWS_ROLE_ARN) with the pod's one token.

locals {
  landing = aws_s3_bucket.this["landing"].arn
  lake    = aws_s3_bucket.this["lake"].arn
  jobs    = toset(["bronze", "silver", "gold", "maintenance"])
}

data "aws_iam_policy_document" "trust" {
  for_each = local.jobs
  statement {
    sid     = "ServiceAccount"
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider_url}:sub"
      values = concat(
        ["system:serviceaccount:${var.namespace}:lake-${each.key}"],
        each.key == "maintenance" ? [] : ["system:serviceaccount:${var.namespace}:lake-pipeline"],
      )
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider_url}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "job" {
  for_each           = local.jobs
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.trust[each.key].json
}

resource "aws_iam_role_policy" "job" {
  for_each = local.jobs
  name     = "${var.name}-${each.key}"
  role     = aws_iam_role.job[each.key].id
  policy = {
    bronze      = data.aws_iam_policy_document.bronze.json
    silver      = data.aws_iam_policy_document.silver.json
    gold        = data.aws_iam_policy_document.gold.json
    maintenance = data.aws_iam_policy_document.maintenance.json
  }[each.key]
}

# bronze: reads the landing zone; writes the bronze tables and meta (the landed objects, the
# run records); holds its lease.
data "aws_iam_policy_document" "bronze" {
  statement {
    sid       = "ListLanding"
    actions   = ["s3:ListBucket"]
    resources = [local.landing]
  }
  statement {
    sid       = "ReadLanding"
    actions   = ["s3:GetObject"]
    resources = ["${local.landing}/*"]
  }
  statement {
    sid       = "ListOwnLayers"
    actions   = ["s3:ListBucket"]
    resources = [local.lake]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["bronze/*", "meta/*", "_leases/bronze/*"]
    }
  }
  statement {
    sid       = "WriteOwnLayers"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${local.lake}/bronze/*", "${local.lake}/meta/*"]
  }
  statement {
    sid       = "Lease"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.lake}/_leases/bronze/*"]
  }
}

# silver: reads bronze, the landed objects and the batches' claims (which batches are complete);
# writes the silver tables (and the plans of its splits) and the run records.
data "aws_iam_policy_document" "silver" {
  statement {
    sid       = "ListInputsAndOwnLayer"
    actions   = ["s3:ListBucket"]
    resources = [local.lake]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["bronze/*", "silver/*", "meta/*", "_leases/silver/*"]
    }
  }
  statement {
    sid       = "ReadBronze"
    actions   = ["s3:GetObject"]
    resources = ["${local.lake}/bronze/*", "${local.lake}/meta/landed_objects/*", "${local.lake}/meta/bronze_batches/*"]
  }
  statement {
    sid       = "WriteSilverAndRuns"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${local.lake}/silver/*", "${local.lake}/meta/runs/*"]
  }
  statement {
    sid       = "Lease"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.lake}/_leases/silver/*"]
  }
}

# gold: reads silver (and, for the report, every table's figures); writes the gold tables, the
# deliverables under gold/ and the run records.
data "aws_iam_policy_document" "gold" {
  statement {
    sid       = "ListLake"
    actions   = ["s3:ListBucket"]
    resources = [local.lake]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["bronze/*", "silver/*", "gold/*", "meta/*", "_leases/gold/*"]
    }
  }
  statement {
    sid       = "ReadLake"
    actions   = ["s3:GetObject"]
    resources = ["${local.lake}/bronze/*", "${local.lake}/silver/*", "${local.lake}/meta/*"]
  }
  statement {
    sid       = "WriteGold"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${local.lake}/gold/*"]
  }
  statement {
    # meta.runs is read through ReadLake; gold only adds its run to it
    sid       = "AppendRuns"
    actions   = ["s3:PutObject"]
    resources = ["${local.lake}/meta/runs/*"]
  }
  statement {
    sid       = "Lease"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.lake}/_leases/gold/*"]
  }
}

# maintenance (lake optimize, checkpoint, vacuum): rewrites and deletes table files in every
# layer, under each layer's lease.
data "aws_iam_policy_document" "maintenance" {
  statement {
    sid       = "ListTables"
    actions   = ["s3:ListBucket"]
    resources = [local.lake]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["bronze/*", "silver/*", "gold/*", "meta/*", "_leases/*"]
    }
  }
  statement {
    sid       = "RewriteTables"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.lake}/bronze/*", "${local.lake}/silver/*", "${local.lake}/gold/*", "${local.lake}/meta/*"]
  }
  statement {
    sid       = "Leases"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.lake}/_leases/bronze/*", "${local.lake}/_leases/silver/*", "${local.lake}/_leases/gold/*"]
  }
}
