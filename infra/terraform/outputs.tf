output "landing_url" {
  description = "LAKE_LANDING for the jobs."
  value       = "s3://${aws_s3_bucket.this["landing"].id}"
}

output "lake_url" {
  description = "LAKE_ROOT for the jobs and the lake tool."
  value       = "s3://${aws_s3_bucket.this["lake"].id}"
}

output "role_arns" {
  description = "The role of each job, for the eks.amazonaws.com/role-arn annotation of its service account."
  value       = { for job, role in aws_iam_role.job : job => role.arn }
}

output "image_repository" {
  description = "Where to push infra/docker's image."
  value       = aws_ecr_repository.jobs.repository_url
}
