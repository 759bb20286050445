#!/usr/bin/env bash
# Trains every method with its defaults — only --data and --optimizer, plus --threads 1 and --out to keep the run —
# on weather, wine and Fashion-MNIST, and writes docs/defaults/table.md from the runs' metrics.json.
# Also a short Fashion-MNIST budget (first 10 000 training images, 3 epochs) into docs/defaults/subset/.
# Usage: bash scripts/defaults-table.sh [table]   (needs jq; Fashion-MNIST needs the dataset-fashion-mnist package)
#        bash scripts/defaults-table.sh table     rewrites the tables from the existing runs only
#        RUN="kbfgs ksd" bash scripts/defaults-table.sh   reruns only these methods (FULL_FASHION=0: not on the full
#        Fashion-MNIST set), then rewrites the tables
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/defaults
methods="sgd adam exact block tengrad diag kfac ekfac hf kbfgs ksd"
run_methods=${RUN:-$methods}

run() {   # run DIR ARGS...: one natgrad train run into DIR, its command in DIR/command.txt, a refusal in DIR/refused.txt
  local dir=$1; shift
  local cmd="natgrad train $* --threads 1 --out $dir"
  rm -rf "$dir"
  set +e
  err=$($bin train "$@" --threads 1 --out "$dir" 2>&1 >/dev/null)
  local code=$?
  set -e
  mkdir -p "$dir"
  echo "$cmd" > "$dir/command.txt"
  if [[ $code != 0 ]]; then echo "exit $code: $err" > "$dir/refused.txt"; fi
  # kept small: epochs.csv, config.json and metrics.json stay
  rm -f "$dir/steps.csv" "$dir/model.pt" "$dir/model.json" "$dir/checkpoint.ngck" "$dir/run.json"
}

row() {   # row DATA METHOD DIR: one Markdown table row
  local data=$1 m=$2 dir=$3 cmd
  if [[ ! -f $dir/command.txt ]]; then echo "| $data | $m | not run | | | | | | |"; return; fi
  cmd=$(cat "$dir/command.txt")
  if [[ -f $dir/refused.txt ]]; then
    echo "| $data | $m | refused: $(sed 's/^exit [0-9]*: natgrad: error: //' "$dir/refused.txt" | tr '|' '/') | | | | | | \`$cmd\` |"
  else
    jq -r --arg d "$data" --arg m "$m" --arg c "$cmd" \
      '"| \($d) | \($m) | \(.final_train_loss*10000|round/10000) | \(.final_test_loss*10000|round/10000) | \(if .final_test_accuracy == null then "–" else "\(.final_test_accuracy*1000|round/10) %" end) | \(.steps) | \(.wall_seconds*10|round/10) | \(.step_ms_median*100|round/100) | `\($c)` |"' \
      "$dir/metrics.json"
  fi
}

header() {
  echo "| data | method | final train loss | final test loss | test accuracy | steps | wall (s) | median step (ms) | command |"
  echo "|---|---|---|---|---|---|---|---|---|"
}

if [[ ${1:-} != table ]]; then
  if [[ -z ${NATGRAD:-} ]]; then dotnet build src/NaturalGradient.Cli -c Release -v q -nologo >/dev/null; fi
  bin=${NATGRAD:-src/NaturalGradient.Cli/bin/Release/net10.0/natgrad}   # NATGRAD: a copy of the tool
  for data in weather wine fashion-mnist; do
    [[ $data == fashion-mnist && ${FULL_FASHION:-1} == 0 ]] && continue
    for m in $run_methods; do run $out/$data-$m --data $data --optimizer $m; done
  done
  for m in $run_methods; do run $out/subset/fashion-mnist-$m --data fashion-mnist --optimizer $m --max-train 10000 --epochs 3; done
fi

{ header; for data in weather wine fashion-mnist; do for m in $methods; do row $data $m $out/$data-$m; done; done; } > $out/table.md
{ header; for m in $methods; do row fashion-mnist $m $out/subset/fashion-mnist-$m; done; } > $out/table-subset.md
cat $out/table.md $out/table-subset.md
