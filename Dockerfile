# One image for both processes of the service:
#   api     uvicorn --factory api.app:create_app --host 0.0.0.0 --port 8000   (the default CMD)
#   worker  python worker.py
# docker-compose.yml runs both from it; configuration comes from WEBHOOKS_* variables.

ARG PYTHON_IMAGE=python:3.11-slim

##### Build: a virtual environment with the dependencies, then the project #####
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when
# pyproject.toml changes, not on every source edit.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
 && pip install -r /tmp/requirements.txt

# Then the project itself (pyproject lists its packages explicitly).
COPY . .
RUN pip install --no-deps . \
 && cd / && python -c "import api.app, worker, settings, workflows.search_attributes"

##### Runtime #####
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

RUN groupadd --system --gid 10001 webhooks \
 && useradd --system --uid 10001 --gid webhooks --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin webhooks

COPY --from=build /opt/venv /opt/venv

# The sources as well: `python worker.py` runs the file from the working directory.
# Owned by root, so the service user cannot change its own code.
WORKDIR /app
COPY . /app

USER webhooks:webhooks

EXPOSE 8000

CMD ["uvicorn", "--factory", "api.app:create_app", "--host", "0.0.0.0", "--port", "8000"]
