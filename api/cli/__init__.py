"""The command line `appraisal` (`main.py`, typer): import, results, explain, replay, project,
verify, serve, demo, template. `integrity_commands.py` (verify, checkpoint, prove, key, backup),
`replay_commands.py` (replay, scheme diff) and `server_commands.py` (serve, token) hold the
sub-commands; `demo.py` writes a demo year. The top of the arrows: it may import every layer.
"""
