# Convenience targets; ./dev does the work (it needs only bash, not make).
.PHONY: setup demo test bench clean distclean

setup:
	./dev setup

demo:
	./dev demo

test:
	./dev test

bench:
	./dev bench

clean:
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +

# clean, and also the virtualenv (the next ./dev setup reinstalls everything)
distclean: clean
	rm -rf .venv
