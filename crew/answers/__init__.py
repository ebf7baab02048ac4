"""What agents' answers become: code blocks, the user's examples as tests, cleaned modules, test feedback, the
consensus' probes, the task told in words. Pure, over the sandbox's reports."""
