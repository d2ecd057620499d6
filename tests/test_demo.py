import imageio.v3 as iio

from prefrl.cli import main


def test_demo_trains_cartpole_and_writes_a_report(tmp_path, capsys):
    run_dir = tmp_path / "demo"
    assert main(["demo", "--run-dir", str(run_dir)]) == 0
    report = (run_dir / "report.md").read_text()
    assert "PPO on CartPole-v1" in report and "![learning curves](plots/learning_curves.png)" in report
    assert "first reached a 20-episode mean of 475 | " in report
    assert "not within this run" not in report  # the preset solves CartPole within the demo's budget
    assert iio.imread(run_dir / "plots" / "learning_curves.png").shape[0] > 300
    assert len(list(iio.imiter(run_dir / "videos" / "CartPole-v1.mp4"))) >= 100
    assert "report:" in capsys.readouterr().err
