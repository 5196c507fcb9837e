# qabot images, from the wheel and the locked versions (requirements.lock).
#   docker build -t qabot .                   trains and serves (TensorFlow included)
#   docker build --target serve -t qabot .    serves only: a fraction of the size; it answers
#                                             with models trained elsewhere (shared QABOT_HOME)
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY bot bot
COPY model model
COPY migrations migrations
# The lock's pins without their hashes, as constraints for every install below.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
    && sed -n 's/^\([A-Za-z0-9._-]*==[^ ]*\).*/\1/p' requirements.lock > /dist/constraints.txt

FROM ${PYTHON_IMAGE} AS serve
RUN useradd --create-home --uid 1000 qabot && mkdir /data && chown qabot /data
COPY --from=wheel /dist /dist
RUN pip install --no-cache-dir -c /dist/constraints.txt /dist/qabot-*.whl
ENV QABOT_HOME=/data \
    QABOT_WEBHOOK_LISTEN=0.0.0.0:8443 \
    PYTHONUNBUFFERED=1
USER qabot
WORKDIR /data
VOLUME /data
EXPOSE 8443
CMD ["qabot", "run"]

FROM serve AS train
USER root
RUN pip install --no-cache-dir -c /dist/constraints.txt "$(ls /dist/qabot-*.whl)[train]"
USER qabot
