"""labstack's Pulumi components: one ComponentResource per module, plus the typed stack config."""
