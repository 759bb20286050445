# Shared by the defaults sweeps (scripts/defaults-sweep-*.sh); source it after setting:
#   data  the data set, bin  the natgrad executable, file  the CSV being written (rows are appended to $file.tmp),
#   nice  optional array prefixed to every run (e.g. (nice -n 19)).
# sweep LRS ARGS...: one `natgrad compare` over the learning rates LRS (comma-separated) with the other options ARGS,
# seed 0, one thread; one CSV row per run, each starting with the command that reproduces it (--lr-grid narrowed to
# the row's lr), or one "failed" row when compare wrote no runs.csv.
sweep() {
  local lrs=$1; shift
  local out; out=$(mktemp -d)
  ${nice+"${nice[@]}"} "$bin" compare --data "$data" "$@" --lr-grid "$lrs" --seeds 0 --threads 1 --out "$out" >/dev/null 2>&1 || true
  if [[ -f $out/runs.csv ]]; then
    tail -n +2 "$out/runs.csv" | while IFS=, read -r opt lr seed _bs status train test _tracc tacc _wall steps median _msg; do
      local args="$*"
      echo "natgrad compare --data $data ${args} --lr-grid $lr --seeds 0 --threads 1,$opt,$lr,$seed,$status,$train,$test,$tacc,$steps,$median"
    done >> "$file.tmp"
  else
    echo "natgrad compare --data $data $* --lr-grid $lrs --seeds 0 --threads 1,,,0,failed,,,,," >> "$file.tmp"
  fi
  rm -rf "$out"
}
