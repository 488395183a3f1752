# crowdbridge: one image for the API, the workers (default and training queues) and beat.
# CPU build of torch (pinned in pyproject.toml); build a CUDA variant for GPU training workers with
#   --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
FROM python:3.11-slim AS base

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CROWDBRIDGE_DATA_DIR=/var/lib/crowdbridge \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TRANSFORMERS_VERBOSITY=error

RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /home/crowdbridge crowdbridge \
    && mkdir -p /var/lib/crowdbridge && chown crowdbridge /var/lib/crowdbridge

WORKDIR /app
# dependencies first, so code changes do not re-download torch
COPY pyproject.toml README.md ./
RUN mkdir -p service workers connectors && touch service/__init__.py workers/__init__.py connectors/__init__.py \
    && pip install --extra-index-url "${TORCH_INDEX}" ".[ops]" \
    && pip uninstall -y crowdbridge

COPY service ./service
COPY workers ./workers
COPY connectors ./connectors
RUN pip install --no-deps . && python -c "import service, workers, connectors"

USER crowdbridge
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1

# api (default); override the command for the other roles:
#   worker:           crowdbridge worker --queues default,reconcile --no-beat
#   training worker:  crowdbridge worker --queues training --concurrency 1 --no-beat
#   beat:             celery -A workers.app beat
#   migrations:       crowdbridge db-upgrade
CMD ["crowdbridge", "api", "--host", "0.0.0.0", "--port", "8000"]
