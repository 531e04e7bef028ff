#!/usr/bin/env bash
# Validate a Kaldi data directory; see: python -m tasu.bin.validate_data_dir --help
exec python -m tasu.bin.validate_data_dir "$@"
