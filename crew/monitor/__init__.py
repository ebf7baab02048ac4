"""Live GPU monitoring: NVML samples, alert thresholds, the crew-run sampler and the Prometheus exporter."""
