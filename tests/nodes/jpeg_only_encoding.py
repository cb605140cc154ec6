"""A camera that sends JPEG frames whose metadata carries only `encoding` (as node-hub's
dora-pyorbbecksdk does): no width, no height. Each `tick` input sends the next frame of the
video file CAPTURE_PATH, compressed with OpenCV at JPEG quality 95; the node ends when its tick
input closes. Runs in the project's .venv/ (scripts/setup.sh installs OpenCV and dora's Python API).
"""

import os

import cv2
import pyarrow as pa
from dora import Node


def main():
    capture = cv2.VideoCapture(os.environ["CAPTURE_PATH"])
    node = Node()
    for event in node:
        if event["type"] == "INPUT" and event["id"] == "tick":
            ok, frame = capture.read()
            if not ok:
                raise RuntimeError("the video file has no more frames")
            ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
            if not ok:
                raise RuntimeError("cannot compress a frame")
            node.send_output("image", pa.array(jpeg.ravel()), {"encoding": "jpeg"})
        elif event["type"] == "INPUT_CLOSED" and event["id"] == "tick":
            break
        elif event["type"] == "STOP":
            break


if __name__ == "__main__":
    main()
