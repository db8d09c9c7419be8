def test_the_driver_and_the_executors_never_name_a_job_kind():
    from pathlib import Path

    import transferlab
    from transferlab.jobs import KINDS

    assert list(KINDS) == ["train", "evaluate"]  # status lines and timings follow this order
    root = Path(transferlab.__file__).parent
    generic = [root / "runner.py", root / "status.py", *sorted((root / "executors").glob("*.py"))]
    for file in generic:
        text = file.read_text()
        for name in ("TrainJob", "EvalJob", "TrainResult", "EvalResult", "isinstance(job"):
            assert name not in text, (file.name, name)
