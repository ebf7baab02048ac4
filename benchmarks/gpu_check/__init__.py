"""The CUDA check (issue #15 §7): llama.cpp's CUDA buffers, NVML's used memory and decode speed on a real GPU,
against `plan-gpus estimate --device cuda`; and llama-server built with CUDA, started with the crew's argv at 1
and 4 slots, its buffers against the estimate for that many slots (issue #25). `benchmarks/gpu_check.sh` is
the one command; docs/estimator.md says how to run it. Each module here runs (and is tested) on the CPU; only
the build and NVML need the GPU.
"""
