"""What the dashboard's server needs: run listing, background jobs and their priority, the shared memo and
compute slots, the step player, and the limits of what it serves."""
