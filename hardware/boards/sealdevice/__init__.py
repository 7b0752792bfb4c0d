"""sealdevice: the sealtoken firmware as a USB security key under MicroPython (>= 1.23).

Runs on any port with machine.USBDevice; a board file (hardware/boards/<port>/board.py) gives
what differs between boards. The modules:

    usb.py       the composite device over machine.USBDevice: descriptors, callbacks, endpoint queues
    hid.py       the HID interface that carries CTAPHID (FIDO2)
    ccid.py      the CCID interface (USB smartcard class) that carries the card's APDUs
    flash.py     the token's flash on the board's block device, and the blocks reserved for it
    platform.py  BoardPlatform: the sealtoken Platform of a board
    app.py       run(board): the token, the USB device and the main loop
    names.py     learn_names(): the firmware's names made at start, while the heap is in one piece

MicroPython only (machine, micropython.schedule semantics); it imports sealtoken, never the host.
"""
