"""The stages of a sweep variant are DVC's resolution of dvc.yaml with the variant's params."""

from __future__ import annotations

from greenpipe.flows.sweep import stage_order_for

DVC_YAML = """\
stages:
  get:
    cmd: python get.py
    outs: [raw.csv]
  fit:
    foreach: ${train.backends}
    do:
      cmd: python fit.py ${item}
      deps: [raw.csv]
      outs:
        - fit_${item}.bin
  size:
    foreach: ${sizes}
    do:
      cmd: python size.py ${item}
      deps: [raw.csv]
      outs:
        - size_${item}.csv
"""


def test_each_foreach_expands_over_its_own_list_for_the_variant(tmp_path):
    from dvc.repo import Repo

    Repo.init(str(tmp_path), no_scm=True).close()
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "params.yaml").write_text("train: {backends: [torch]}\nsizes: [8]\n")
    variant = {"train": {"backends": ["tensorflow", "torch"]}, "sizes": [16, 32]}
    order = stage_order_for(tmp_path, variant)
    assert sorted(order) == ["fit@tensorflow", "fit@torch", "get", "size@16", "size@32"]
    assert order[0] == "get"  # DVC's graph: what the others depend on comes first
    assert (tmp_path / "params.yaml").read_text().startswith("train: {backends: [torch]}")
