# The prediction service on a CPU: ONNX Runtime, no CUDA, run as a non-root user.
#
#   docker build -t segcourse-serve .
#   docker run --rm -p 8000:8000 -v "$PWD/ckpt:/models:ro" segcourse-serve /models/unet.onnx
#   curl -F "file=@tile.png" "http://127.0.0.1:8000/predict?format=json"
#
# Inside the container the service listens on 0.0.0.0 (the published port is how it is reached); publish it
# on a public interface only behind a reverse proxy that adds TLS and authentication.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements/serve.txt requirements/lock.txt requirements/
# CPU-only PyTorch from its own index; everything else from PyPI, every version pinned by the course's lock file
RUN pip install --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple \
        -r requirements/serve.txt -c requirements/lock.txt

COPY pyproject.toml README.md ./
COPY segcourse/ segcourse/
RUN pip install --no-deps . && rm -rf /app/build

RUN useradd --create-home --uid 10001 segcourse
USER segcourse
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
ENTRYPOINT ["python", "-m", "segcourse", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD ["/models/model.onnx"]
