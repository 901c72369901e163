variable "name" {
  description = "Prefix of every resource: the buckets are <name>-landing and <name>-lake, the roles <name>-<job>."
  type        = string
  default     = "lakehouse-jobs"
}

variable "region" {
  description = "AWS region of the buckets, the registry and the cluster."
  type        = string
  default     = "eu-west-1"
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider (IRSA), e.g. arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC."
  type        = string
}

variable "oidc_provider_url" {
  description = "Issuer URL of that OIDC provider without https://, e.g. oidc.eks.eu-west-1.amazonaws.com/id/ABC."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the jobs' service accounts (infra/k8s)."
  type        = string
  default     = "lakehouse"
}

variable "noncurrent_days" {
  description = "Days an overwritten or deleted data object is kept (a window to undo a bad run; Delta time travel needs only the current objects)."
  type        = number
  default     = 30
}

variable "access_log_bucket" {
  description = "Bucket that receives the S3 server access logs of both buckets."
  type        = string
}
