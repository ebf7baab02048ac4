"""The CUDA check (issue #15 §7): llama.cpp's CUDA buffers, NVML's used memory and decode speed on a real GPU,
against `plan-gpus estimate --device cuda`. `benchmarks/gpu_check.sh` is the one command; docs/estimator.md
says how to run it. Each module here runs (and is tested) on the CPU; only the build and NVML need the GPU.
"""
