#!/usr/bin/env bash
# Repair a Kaldi data directory in place (originals kept in <dir>/.backup/); see --help.
exec python -m tasu.bin.fix_data_dir "$@"
