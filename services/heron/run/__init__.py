"""`heron run`: a local supervisor of Heron service processes, like deepstream-app."""
