# The landing zone (sources write, bronze reads) and the lake (the jobs write their layers).
# Both: versioned, encrypted with the project's KMS key, never public, TLS only, logged.

locals {
  buckets = {
    landing = "${var.name}-landing"
    lake    = "${var.name}-lake"
  }
  # Prefixes of the lake whose objects are data: old versions are kept var.noncurrent_days.
  data_prefixes = ["bronze/", "silver/", "gold/", "meta/"]
  # Prefixes of short-lived objects: the job leases (rewritten every heartbeat) and temporary
  # uploads. Their old versions are worth nothing, so they are not kept.
  scratch_prefixes = ["_leases/"]
}

resource "aws_kms_key" "lake" {
  description             = "Encrypts the ${var.name} landing and lake buckets."
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "lake" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.lake.key_id
}

resource "aws_s3_bucket" "this" {
  # checkov:skip=CKV_AWS_144: cross-region replication is a per-account recovery choice; the lake is rebuilt from landing, and landing is the sources' copy
  # checkov:skip=CKV2_AWS_62: nothing consumes bucket events; the jobs run on a schedule (infra/airflow, infra/k8s)
  for_each = local.buckets
  bucket   = each.value
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = local.buckets
  bucket   = aws_s3_bucket.this[each.key].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = local.buckets
  bucket   = aws_s3_bucket.this[each.key].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.lake.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each                = local.buckets
  bucket                  = aws_s3_bucket.this[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_logging" "this" {
  for_each      = local.buckets
  bucket        = aws_s3_bucket.this[each.key].id
  target_bucket = var.access_log_bucket
  target_prefix = "${aws_s3_bucket.this[each.key].id}/"
}

resource "aws_s3_bucket_policy" "tls_only" {
  for_each = local.buckets
  bucket   = aws_s3_bucket.this[each.key].id
  policy   = data.aws_iam_policy_document.tls_only[each.key].json
}

data "aws_iam_policy_document" "tls_only" {
  for_each = local.buckets
  statement {
    sid       = "DenyPlainHttp"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this[each.key].arn, "${aws_s3_bucket.this[each.key].arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.this["lake"].id

  dynamic "rule" {
    for_each = local.data_prefixes
    content {
      id     = "keep-old-versions-of-${trimsuffix(rule.value, "/")}"
      status = "Enabled"
      filter {
        prefix = rule.value
      }
      noncurrent_version_expiration {
        noncurrent_days = var.noncurrent_days
      }
      abort_incomplete_multipart_upload {
        days_after_initiation = 2
      }
    }
  }

  dynamic "rule" {
    for_each = local.scratch_prefixes
    content {
      id     = "drop-old-versions-of-${trimsuffix(rule.value, "/")}"
      status = "Enabled"
      filter {
        prefix = rule.value
      }
      noncurrent_version_expiration {
        noncurrent_days = 1
      }
      abort_incomplete_multipart_upload {
        days_after_initiation = 1
      }
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "landing" {
  bucket = aws_s3_bucket.this["landing"].id
  rule {
    id     = "keep-old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
}

data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "kms" {
  # A key policy: its Resource "*" is the key it is attached to, nothing else (AWS KMS key
  # policies take no other resource), and the account's root keeps administering the key so that
  # it can never become unmanageable.
  # checkov:skip=CKV_AWS_111: in a key policy, "*" is this key only
  # checkov:skip=CKV_AWS_356: in a key policy, "*" is this key only
  # checkov:skip=CKV_AWS_109: the account administers its own key, as AWS's default key policy does
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "JobsUseTheKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [for role in aws_iam_role.job : role.arn]
    }
  }
}
