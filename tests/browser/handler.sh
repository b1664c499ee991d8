#!/bin/sh
# The exec handler of the browser tests (see run.mjs). $UI_TEST_DIR is the test's directory.
#   kind "steps": reports 50% "halfway", then waits (at most 30 s) for the file
#     $UI_TEST_DIR/go-$TASKQ_JOB_ID that the test creates once it has seen the progress live.
#   kind "flaky": fails for good (exit 65) the first time a job runs, completes the next time.
#   anything else: reads its args and completes at once.
cat >/dev/null
case $TASKQ_JOB_KIND in
  steps)
    echo "progress 50 halfway" >&3
    i=0
    while [ ! -e "$UI_TEST_DIR/go-$TASKQ_JOB_ID" ] && [ $i -lt 600 ]; do
      sleep 0.05
      i=$((i + 1))
    done
    echo "progress 100 done" >&3
    echo 'result {"steps": 2}' >&3
    ;;
  flaky)
    if [ ! -e "$UI_TEST_DIR/failed-$TASKQ_JOB_ID" ]; then
      : >"$UI_TEST_DIR/failed-$TASKQ_JOB_ID"
      echo "flaky: first attempt fails <script>window.__xss = 'stderr'</script>" >&2
      exit 65
    fi
    echo 'result {"second": "time lucky"}' >&3
    ;;
  *)
    echo 'result "<img src=x onerror=\"window.__xss = 1\">"' >&3
    ;;
esac
