"""The run's journal (run.jsonl): appended and fsynced per step, read back for the report, resume and replay.

Below serving and run: the failover router records its decisions here, and the run reads them back.
"""
