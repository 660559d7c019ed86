# saasmon: the exporters, the reference app (refapp) and its stand-ins, in one image.
#   docker run IMAGE postgres --config.file /etc/saasmon/postgres.yml     (an exporter)
#   docker run --entrypoint python IMAGE -m refapp --listen 0.0.0.0:8080  (the app)
# Pinned by full version so a rebuild gets the same interpreter; bump deliberately.
FROM python:3.11.9-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package build reads (see .dockerignore): source edits elsewhere in the
# repo do not invalidate the install layer.
COPY pyproject.toml constraints.txt README.md ./
COPY exporters ./exporters
# constraints.txt pins every dependency to the versions the test suite ran with. A regular
# (non-editable) install of the one package, saasmon, so the source tree is not needed at run
# time. The `demo` extra is the SMTP stand-in of `python -m refapp.receivers`; it is not a
# dependency of the exporters.
RUN pip install -c constraints.txt '.[demo]' \
    && rm -rf /src \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin saasmon
# The reference app is not in the wheel: it runs from its source folder on PYTHONPATH.
COPY refapp /opt/saasmon/refapp
ENV PYTHONPATH=/opt/saasmon

WORKDIR /
# Numeric uid so runtimes enforcing runAsNonRoot can verify it without reading /etc/passwd.
USER 10001
# Exporters 9630-9636; the reference app 8080; the stand-in receivers 9700 (HTTP), 2525 (SMTP).
EXPOSE 9630 9631 9632 9633 9634 9635 9636 8080 9700 2525
ENTRYPOINT ["saasmon"]
CMD ["--help"]
