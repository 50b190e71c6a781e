"""`rpra serve` with the official openai client: plain, streaming, and the routing headers.

By default this starts the service in-process on a free 127.0.0.1 port (with the
demo or RPRA_* models). To talk to a running ``rpra serve`` instead:

    rpra serve --small gguf:/m/small.gguf --large openai:gpt-4o-mini --api-key sk-local &
    python examples/service_client.py --base-url http://127.0.0.1:8000/v1 --api-key sk-local
"""

import argparse
import socket
import threading
import time
from contextlib import contextmanager

import openai
from _demo import model_strings


@contextmanager
def local_service(api_key: str):
    import uvicorn

    from rpra_agent.service import ChatEngine, Settings, build_components, create_app

    small, large = model_strings()
    components = build_components(Settings(small_model=small, large_model=large, database_url="memory://"))
    app = create_app(ChatEngine.from_components(components, model_name="rpra"), api_key=api_key)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join()


def run(base_url: str, api_key: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    print("models:", [m.id for m in client.models.list()])
    model = client.models.list().data[0].id
    question = [{"role": "user", "content": "What is the capital of France?"}]
    raw = client.chat.completions.with_raw_response.create(model=model, messages=question)
    completion = raw.parse()
    print("answer:", completion.choices[0].message.content)
    print(
        f"route={raw.headers['x-rpra-route']} reason={raw.headers['x-rpra-reason']} predicted_grade={raw.headers['x-rpra-predicted-grade']}"
    )
    print("rpra metadata:", {k: completion.model_extra["rpra"][k] for k in ("route", "reason", "model", "steps")})
    stream = client.chat.completions.create(model=model, messages=question, stream=True)
    print("streamed:", "".join(c.choices[0].delta.content or "" for c in stream if c.choices))
    try:
        openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0).models.list()
    except openai.AuthenticationError as exc:
        print("wrong key ->", exc.status_code, exc.body["code"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a running rpra serve (default: start one in-process)")
    parser.add_argument("--api-key", default="sk-demo")
    args = parser.parse_args()
    if args.base_url:
        run(args.base_url, args.api_key)
        return
    with local_service(args.api_key) as base_url:
        run(base_url, args.api_key)


if __name__ == "__main__":
    main()
