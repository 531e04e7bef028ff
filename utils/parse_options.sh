#!/usr/bin/env bash
# Parse --name value / --name=value options into existing shell variables.
#
# Usage, in a bash script, after its defaults are set:
#     nj=4; use_gpu=false
#     help_message="Usage: $0 [options] <data-dir>"
#     . utils/parse_options.sh    # source it WITHOUT arguments: it shifts "$@"
#
# Each --some-name value sets the variable some_name (dashes become
# underscores), which must already exist; unknown options or a missing value
# print an error and exit 1.  Parsing stops at the first argument not starting
# with "--", or after "--".  --help / -h prints $help_message and exits 0.
# Values (including true/false) are taken as plain strings.  Safe under
# set -euo pipefail.

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      if [ -n "${help_message:-}" ]; then
        printf '%s\n' "$help_message"
      else
        echo "$0: no help_message is defined for this script" >&2
      fi
      exit 0 ;;
    --)
      shift
      break ;;
    --*=*)
      __po_opt="${1%%=*}"
      __po_value="${1#*=}"
      shift ;;
    --?*)
      __po_opt="$1"
      if [ $# -lt 2 ]; then
        echo "$0: option $__po_opt needs a value (use $__po_opt <value> or $__po_opt=<value>)" >&2
        exit 1
      fi
      __po_value="$2"
      shift 2 ;;
    *)
      break ;;
  esac
  __po_name="${__po_opt#--}"
  __po_name="${__po_name//-/_}"
  if ! [[ "$__po_name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    echo "$0: invalid option '$__po_opt' (option names are letters, digits, '-' and '_')" >&2
    exit 1
  fi
  if ! declare -p "$__po_name" > /dev/null 2>&1; then
    echo "$0: unknown option '$__po_opt' (this script defines no variable '$__po_name'; see $0 --help)" >&2
    exit 1
  fi
  printf -v "$__po_name" '%s' "$__po_value"
done
unset __po_opt __po_value __po_name
true
