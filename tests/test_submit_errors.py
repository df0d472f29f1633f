"""Submission errors from Snakemake's main log are copied into the rule's log (the real cluster case: test_slurm)."""

from workflow_scripts.common.submit_errors import copy_submit_errors, submit_errors

MAIN_LOG = """\
[Sun Nov 22 03:16:36 2026]
Error in rule scijudge_eval_model:
    message: SLURM sbatch failed. The error message was 'sbatch: error: Invalid generic resource (gres) specification'.
    sbatch call:
        sbatch --parsable -p debug --gres=gpu:1 --wrap="python -m snakemake ..."
For further error details see the cluster/cloud log and the log files of the involved rule(s).
    jobid: 7
    output: results/scijudge/eval/predictions/base.parquet
    log: {log} (check log file(s) for error details)
    shell:
        python -m workflow_scripts.eval.scijudge predict ...
        (command exited with non-zero exit code)
[Sun Nov 22 03:16:37 2026]
Error in rule scijudge_metrics:
    jobid: 9
    log: results/logs/other.log (check log file(s) for error details)
"""


def test_only_submission_failures_are_copied_into_the_rule_log(tmp_path):
    rule_log = tmp_path / "logs" / "base.log"
    main = tmp_path / "main.log"
    main.write_text(MAIN_LOG.format(log=rule_log))
    assert [e["rule"] for e in submit_errors(main.read_text())] == ["scijudge_eval_model"]
    copy_submit_errors([str(main)])
    text = rule_log.read_text()
    assert "was not submitted" in text and "Invalid generic resource" in text and "--gres=gpu:1" in text
