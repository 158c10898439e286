"""Pure renderers: the files a server receives, computed from the typed stack config (no Pulumi, no I/O)."""
