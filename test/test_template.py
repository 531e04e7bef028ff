"""egs/TEMPLATE/setup.sh makes a new recipe dir whose configs extend the default recipe's."""
import subprocess
from pathlib import Path

from tasu.config import DecodeConfig, load_config

TOP = Path(__file__).resolve().parents[1]


def test_setup_makes_a_recipe_that_extends_the_default_one(tmp_path):
    new = tmp_path / "egs" / "my_corpus"
    r = subprocess.run([str(TOP / "egs/TEMPLATE/setup.sh"), str(new)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (new / "tasu.sh").resolve() == (TOP / "egs/TEMPLATE/tasu.sh").resolve()
    assert (new / "utils" / "parse_options.sh").is_file() and "cmd_backend=local" in (new / "cmd.sh").read_text()
    ours, default = load_config(new / "conf/train.yaml"), load_config(TOP / "egs/open_en/conf/train.yaml")
    assert ours.init is None and default.init and ours.optim == default.optim and ours.simulation == default.simulation
    assert load_config(new / "conf/decode.yaml", DecodeConfig) == load_config(TOP / "egs/open_en/conf/decode.yaml",
                                                                             DecodeConfig)
    # stage 0 is the recipe author's to write: until then it says so instead of doing nothing
    r = subprocess.run(["local/data.sh"], cwd=new, capture_output=True, text=True)
    assert r.returncode == 1 and "write the data preparation" in r.stderr
    # an existing dir is never overwritten
    r = subprocess.run([str(TOP / "egs/TEMPLATE/setup.sh"), str(new)], capture_output=True, text=True)
    assert r.returncode == 1 and "exists" in r.stderr
