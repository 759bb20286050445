#!/usr/bin/env bash
# Trains every method with its defaults (only --data and --optimizer; --threads 1 and --out for a quiet, kept run)
# on weather, wine and Fashion-MNIST, and writes docs/defaults/table.md from the runs' metrics.json.
# Fashion-MNIST runs use the first 10 000 training images and 3 epochs (--max-train 10000 --epochs 3) to stay short.
# Usage: bash scripts/defaults-table.sh [data ...]   (needs jq; Fashion-MNIST needs the dataset-fashion-mnist package)
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/NaturalGradient.Cli -c Release -v q -nologo >/dev/null
bin=src/NaturalGradient.Cli/bin/Release/net10.0/natgrad
out=docs/defaults
methods="sgd adam exact block tengrad diag kfac ekfac hf"
datasets=${*:-weather wine fashion-mnist}

for data in $datasets; do
  budget=""
  [[ $data == fashion-mnist ]] && budget="--max-train 10000 --epochs 3"
  for m in $methods; do
    dir=$out/$data-$m
    cmd="natgrad train --data $data --optimizer $m $budget --threads 1 --out $dir"
    rm -rf "$dir"
    set +e
    err=$($bin ${cmd#natgrad } 2>&1 >/dev/null)
    code=$?
    set -e
    mkdir -p "$dir"
    echo "$cmd" > "$dir/command.txt"
    [[ $code != 0 ]] && echo "exit $code: $err" > "$dir/refused.txt"
    rm -f "$dir/steps.csv"   # kept small: epochs.csv, config.json and metrics.json stay
  done
done

{
  echo "| data | method | final train loss | final test loss | test accuracy | steps | wall (s) | median step (ms) | command |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for data in weather wine fashion-mnist; do
    for m in $methods; do
      dir=$out/$data-$m
      [[ -f $dir/command.txt ]] || continue
      cmd=$(cat "$dir/command.txt")
      if [[ -f $dir/refused.txt ]]; then
        echo "| $data | $m | refused: $(sed 's/^exit [0-9]*: natgrad: error: //' "$dir/refused.txt" | tr '|' '/') | | | | | | \`$cmd\` |"
      else
        jq -r --arg d "$data" --arg m "$m" --arg c "$cmd" \
          '"| \($d) | \($m) | \(.final_train_loss*10000|round/10000) | \(.final_test_loss*10000|round/10000) | \(if .final_test_accuracy == null then "–" else "\(.final_test_accuracy*1000|round/10) %" end) | \(.steps) | \(.wall_seconds*10|round/10) | \(.step_ms_median*100|round/100) | `\($c)` |"' \
          "$dir/metrics.json"
      fi
    done
  done
} > $out/table.md
cat $out/table.md
