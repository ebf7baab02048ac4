"""The agents' own tools: read-only views of the run's workspace (file_tools.py)."""
