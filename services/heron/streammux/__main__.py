"""`python -m heron.streammux --config settings.yaml`: run the muxer service."""

from heron.streammux.service import main

main()
