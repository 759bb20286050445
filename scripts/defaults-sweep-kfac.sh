#!/usr/bin/env bash
# The runs behind the K-FAC/EKFAC defaults for the KL-clip form and the factor and inverse periods (docs/DEFAULTS.md);
# one `natgrad compare` per setting, seed 0, one thread, the other options at the methods' defaults, each row written
# with the command that reproduces it (--lr-grid narrowed to the row's lr).
#   bash scripts/defaults-sweep-kfac.sh DATA [schedule]   → docs/defaults/sweeps/NAME-kfac-schedule.csv: KL-clip form
#        {step, gradient} × factor period {1, 2, 3} × inverse period {10, 20} × lr {0.3, 0.1, 0.03}, κ = 1e-3
#   bash scripts/defaults-sweep-kfac.sh DATA kappa        → docs/defaults/sweeps/NAME-kfac-kappa.csv: the gradient form
#        with κ {3e-3, 1e-2} × the same periods and lrs (η²Δᵀg bounds twice the predicted KL plus the damping's share,
#        so the gradient form binds at a smaller step than the step form for the same κ)
# DATA: weather or wine (10 epochs; NAME = DATA) or fashion-mnist (10 000 images, 3 epochs; NAME = fashion).
# Every row states the learning rate, --kl-clip, --kl-clip-form, --factor-period and --inverse-period, so it reruns the
# same setting whatever the defaults of these are (the rest: damping 0.01, momentum 0, Monte-Carlo Fisher, β 0.95). NATGRAD: a copy of the tool (rebuilding meanwhile is then safe); NICE: prefix (default `nice -n 19`).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: defaults-sweep-kfac.sh weather|wine|fashion-mnist [schedule|kappa]}
grid=${2:-schedule}
[[ $grid == schedule || $grid == kappa ]] || { echo "defaults-sweep-kfac.sh: expected schedule or kappa, got '$grid'" >&2; exit 2; }
if [[ -z ${NATGRAD:-} ]]; then dotnet build src/NaturalGradient.Cli -c Release -v q -nologo >/dev/null; fi
bin=${NATGRAD:-src/NaturalGradient.Cli/bin/Release/net10.0/natgrad}
read -r -a nice <<< "${NICE-nice -n 19}"
name=$data; [[ $data == fashion-mnist ]] && name=fashion
file=docs/defaults/sweeps/$name-kfac-$grid.csv
echo "command,optimizer,lr,seed,status,train_loss,test_loss,test_accuracy,steps,median_step_ms" > "$file.tmp"

# sweep LRS ARGS...: one compare per call, rows appended to $file.tmp (scripts/sweep-lib.sh).
source scripts/sweep-lib.sh

sub=()
[[ $data == fashion-mnist ]] && sub=(--max-train 10000 --epochs 3)
for m in kfac ekfac; do
  if [[ $grid == schedule ]]; then clips=("--kl-clip 0.001 --kl-clip-form step" "--kl-clip 0.001 --kl-clip-form gradient")
  else clips=("--kl-clip 0.003 --kl-clip-form gradient" "--kl-clip 0.01 --kl-clip-form gradient"); fi
  for clip in "${clips[@]}"; do
    for tf in 1 2 3; do
      for tinv in 10 20; do
        # shellcheck disable=SC2086  # $clip is four words
        sweep 0.3,0.1,0.03 "${sub[@]}" --optimizers $m $clip --factor-period $tf --inverse-period $tinv
      done
    done
  done
done
mv "$file.tmp" "$file"
echo "wrote $file ($(($(wc -l < "$file") - 1)) runs)"
