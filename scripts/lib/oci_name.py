"""Names the images of an OCI archive for containerd: `oci_name.py ARCHIVE NAME EPOCH`.

containerd's `ctr images import` names an OCI image only by the
`io.containerd.image.name` annotation of index.json; without it, it imports nothing and
exits 0. The archive is rewritten in place, with EPOCH as index.json's time so the
archive stays reproducible.
"""
import io
import json
import sys
import tarfile

path, name, epoch = sys.argv[1], sys.argv[2], int(sys.argv[3])
with tarfile.open(path) as archive:
    members = [(m, archive.extractfile(m).read() if m.isfile() else None) for m in archive.getmembers()]
with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
    for member, data in members:
        if member.name.lstrip("./") == "index.json":
            index = json.loads(data)
            for manifest in index["manifests"]:
                manifest.setdefault("annotations", {})["io.containerd.image.name"] = name
            data = json.dumps(index, separators=(",", ":")).encode()
            member.size, member.mtime = len(data), epoch
        archive.addfile(member, io.BytesIO(data) if data is not None else None)
