# Convenience targets; ./dev does the work (it needs only bash, not make).
.PHONY: setup demo test bench chaos clean distclean

setup:
	./dev setup

demo:
	./dev demo

test:
	./dev test

bench:
	./dev bench

# 20 minutes of seeded faults with invariant checks, 10 at 2 s sessions and 10 at zkelect's and
# ZooKeeper's defaults (10 s sessions, 2000 ms ticks); reports in chaos-report/<timestamp>/
chaos:
	./dev chaos

clean:
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +

# clean, and also the virtualenv (the next ./dev setup reinstalls everything)
distclean: clean
	rm -rf .venv
