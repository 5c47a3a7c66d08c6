"""Packaging for printapi: the print history API of a 3D-printer monitoring service."""

from setuptools import find_packages, setup

setup(
    name="printapi",
    version="0.1.0",
    description="Print history API for 3D-printer dashboards, on aiohttp and PostgreSQL.",
    python_requires=">=3.11",
    packages=find_packages(include=["service", "service.*"]),
    include_package_data=False,
    install_requires=[
        "aiohttp>=3.11,<4",
        "aiohttp-session[secure]>=2.12,<3",
        "asyncpg>=0.30,<1",
        "attrs>=24.2",
        "argon2-cffi>=23.1",
        "pgserver>=0.1.4,<0.2",
        "tqdm>=4.66",
        "prometheus-client>=0.20,<1",
    ],
    extras_require={
        "test": [
            "hypothesis>=6.100",
            "pytest>=8",
            "pytest-aiohttp>=1.1",
            "psutil>=5.9",
            "ruff>=0.8",
            "jsonschema-rs>=0.29",
            "schemathesis>=4.1,<5",
            "py-spy>=0.4",
        ],
    },
    entry_points={"console_scripts": ["printapi = service.cli:main"]},
)
