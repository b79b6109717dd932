"""``python -m crsmeta.simulate``: write SYNTHETIC study files and tables from a seed."""

from crsmeta.simulate.files import main

main()
