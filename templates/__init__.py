"""The jinja2 templates, mirroring the paths they are written to on a host (shipped in the wheel
as ``pyinfra_hardening.templates``)."""
