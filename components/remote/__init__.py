"""Remote deploy steps over SSH: host setup and apps (pulumi-command resources running hooks/)."""
