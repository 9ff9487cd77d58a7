"""Getting short interest out: live pages from the gateway (`fetch`) and stored history from the warehouse
(`export`), for scripts, notebooks and analysts who do not write SQL."""
