"""WebSocket chat: an echo/broadcast server and a typing client (Debian's python3-websockets).

server: /usr/bin/python3 wschat.py server IP PORT
client: /usr/bin/python3 wschat.py client URL MESSAGES SEED
"""

import asyncio
import random
import sys

import websockets


async def serve(ip, port):
    async def chat(ws, path=None):
        async for msg in ws:
            await ws.send(f"echo: {msg}")

    async with websockets.serve(chat, ip, port, ping_interval=5):
        print("listening", flush=True)
        await asyncio.Future()


async def client(url, count, seed):
    rng = random.Random(seed)
    words = "hello lab packet tunnel meeting lunch today tomorrow ok sure thanks see you later".split()
    async with websockets.connect(url, ping_interval=5) as ws:
        got = 0
        for _ in range(count):
            msg = " ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
            await ws.send(msg)
            reply = await asyncio.wait_for(ws.recv(), 10)
            got += reply == f"echo: {msg}"
            await asyncio.sleep(rng.uniform(0.1, 0.8))
    print(f"echoed {got}/{count}")
    return got == count


if __name__ == "__main__":
    if sys.argv[1] == "server":
        asyncio.run(serve(sys.argv[2], int(sys.argv[3])))
    else:
        sys.exit(0 if asyncio.run(client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))) else 1)
