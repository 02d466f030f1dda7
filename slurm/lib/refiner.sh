# Sourced by the REFINER sbatch files (after common.sh): the task, its data and its run directory.
# TASK: mwp, snlr or moral_stories. TRAIN_DATA: default the critic_data recipe's input (critic_data-TASK.yaml
# when it exists). TEST_DATA: default SVAMP (mwp) or the task's test file. REFINER_DIR: outputs.
TASK="${TASK:-mwp}"
REFINER_DIR="${REFINER_DIR:-runs/refiner-$TASK}"
mkdir -p "$REFINER_DIR"
recipe_for() {  # STAGE: STAGE-TASK when $CONFIG_DIR has that variant, else STAGE
  if [[ -n "$CONFIG_DIR" && -f "$CONFIG_DIR/$1-$TASK.yaml" ]]; then echo "$1-$TASK"; else echo "$1"; fi
}
TRAIN_DATA=$(recipe_value "$(recipe_for critic_data)" input "${TRAIN_DATA:-}")
[[ -n "$TRAIN_DATA" ]] || { log "no TRAIN_DATA and no input in $CONFIG_DIR/$(recipe_for critic_data).yaml"; exit 2; }
case "$TASK" in
  mwp) default_test=../shared/data/svamp/mawps-asdiv-a_svamp_dev.csv ;;   # SVAMP's 1,000 problems (refiner.md 1.1)
  snlr) default_test=../shared/data/refiner/srn/srn_test.json ;;
  *) default_test="" ;;
esac
TEST_DATA="${TEST_DATA:-$default_test}"
