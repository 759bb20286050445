#!/usr/bin/env bash
# The exploratory runs behind the kbfgs and ksd defaults (docs/DEFAULTS.md): one `natgrad compare` per setting,
# seed 0, one thread, each row written with the command that reproduces it (--lr-grid narrowed to the row's lr).
#   bash scripts/defaults-sweep-methods.sh weather|wine     → docs/defaults/sweeps/DATA-kbfgs-ksd.csv
#   bash scripts/defaults-sweep-methods.sh fashion-mnist    → docs/defaults/sweeps/fashion-kbfgs-ksd.csv (10 000 images, 3 epochs; candidates only)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: defaults-sweep-methods.sh weather|wine|fashion-mnist}
if [[ -z ${NATGRAD:-} ]]; then dotnet build src/NaturalGradient.Cli -c Release -v q -nologo >/dev/null; fi
bin=${NATGRAD:-src/NaturalGradient.Cli/bin/Release/net10.0/natgrad}   # NATGRAD: a copy of the tool, so rebuilding meanwhile is safe
name=$data; [[ $data == fashion-mnist ]] && name=fashion
file=docs/defaults/sweeps/$name-kbfgs-ksd.csv
echo "command,optimizer,lr,seed,status,train_loss,test_loss,test_accuracy,steps,median_step_ms" > "$file.tmp"

# sweep LRS ARGS...: one compare per call, rows appended to $file.tmp (scripts/sweep-lib.sh).
source scripts/sweep-lib.sh

if [[ $data == fashion-mnist ]]; then
  sub=(--max-train 10000 --epochs 3)
  for lam in 0.1 0.01; do
    sweep 0.1,0.03 "${sub[@]}" --optimizers kbfgs --fisher empirical --damping $lam --momentum 0 --kl-clip 0.001
    sweep 0.03,0.01 "${sub[@]}" --optimizers kbfgs --fisher empirical --damping $lam --momentum 0.9
  done
  for lam in 0.1 0.01 1; do
    for k in 4 8; do sweep 0.1 "${sub[@]}" --optimizers ksd --damping $lam --ksd-dimension $k; done
  done
else
  for mem in 0 10; do
    for lam in 0.001 0.01 0.1; do
      sweep 0.3,0.1,0.03,0.01 --optimizers kbfgs --fisher empirical --damping $lam --momentum 0.9 --kbfgs-memory $mem
      sweep 0.3,0.1,0.03,0.01 --optimizers kbfgs --fisher empirical --damping $lam --momentum 0 --kbfgs-memory $mem
      sweep 0.3,0.1,0.03,0.01 --optimizers kbfgs --fisher empirical --damping $lam --momentum 0 --kl-clip 0.001 --kbfgs-memory $mem
    done
  done
  for lam in 0.001 0.01 0.1 1; do
    for k in 4 8 16; do sweep 0.1 --optimizers ksd --damping $lam --ksd-dimension $k; done
  done
fi
mv "$file.tmp" "$file"
echo "wrote $file ($(($(wc -l < "$file") - 1)) runs)"
