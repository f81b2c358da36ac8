"""CloudWatch metrics of functions: Lambda's `AWS/Lambda` metrics and embedded-format custom
metrics, recorded in memory on the invoke path, kept on disk, and read through CloudWatch's
API (ListMetrics, GetMetricStatistics, GetMetricData) and Prometheus' exposition format."""
