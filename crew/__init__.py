"""localcrew: a CrewAI crew on local models pinned to GPUs."""
