"""The checks of scripts/check_chart.py, by subject: rendering, workloads, RBAC,
traffic (NetworkPolicies and routes against helm/goodsmall/traffic.yaml), resources
without an upstream schema (ServiceMonitor, ScaledObject, HTTPRoute), values schema."""
