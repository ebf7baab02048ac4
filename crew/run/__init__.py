"""One run of the crew: plan → serve → the six tasks with their guardrails → report (workflow.py is the top)."""
