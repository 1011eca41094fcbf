#!/usr/bin/python3
"""What-if from a finished `faceup eval upscale` run (methods pulse and race): a --race keep that
aims only when the thumbnail classifier is confident (top probability >= t) and is plain PULSE
otherwise. The classifier (thumb16 / thumb8 of the heads file) is recomputed from the run's PNG
thumbnails and checked against the targets the run recorded. Scores use the faceres race judge.

usage: tools/race-gate.py OUT_DIR [HEADS_FILE]     (needs python3-torch)
"""
import json, os, struct, sys, zlib, torch
root = sys.argv[1]
heads = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), '..', 'models', 'faceup-heads.safetensors')
races = ['white', 'black', 'asian', 'indian', 'other']
def png(path):
    """8-bit RGB(A) non-interlaced PNG -> [3,H,W] in [0,1] (what faceup writes)."""
    d = open(path, 'rb').read(); pos = 8; idat = b''
    while pos < len(d):
        n, t = struct.unpack('>I4s', d[pos:pos+8]); body = d[pos+8:pos+8+n]; pos += 12 + n
        if t == b'IHDR': w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
        if t == b'IDAT': idat += body
    assert depth == 8 and ctype in (2, 6)
    bpp = 3 if ctype == 2 else 4; raw = zlib.decompress(idat); stride = w * bpp
    out = []; prev = bytearray(stride)
    for y in range(h):
        f = raw[y*(stride+1)]; line = bytearray(raw[y*(stride+1)+1:(y+1)*(stride+1)])
        for i in range(stride):
            a = line[i-bpp] if i >= bpp else 0; b = prev[i]; c = prev[i-bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p-a), abs(p-b), abs(p-c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out.append(bytes(line)); prev = line
    px = torch.tensor([list(r) for r in out], dtype=torch.float32).view(h, w, bpp)[:, :, :3]
    return px.permute(2, 0, 1) / 255.0
def st(path):
    """float32 tensors of a safetensors file."""
    d = open(path, 'rb').read(); n = struct.unpack('<Q', d[:8])[0]; hdr = json.loads(d[8:8+n]); base = 8 + n; t = {}
    for k, v in hdr.items():
        if k == '__metadata__': continue
        a, b = v['data_offsets']; t[k] = torch.frombuffer(bytearray(d[base+a:base+b]), dtype=torch.float32).view(v['shape'])
    return t
W = st(heads)
def probs(x, name):
    h = torch.relu(x.reshape(1, -1) @ W[name+'.0.weight'].T + W[name+'.0.bias'])
    offsets = W.get(name + '.logit_bias', torch.zeros(5))   # absent in older heads files
    return torch.softmax(h @ W[name+'.1.weight'].T + W[name+'.1.bias'] + offsets, 1)[0]
for f, name in [(4, 'thumb16'), (8, 'thumb8')]:
    rows = []; agree = 0
    for fid in sorted(os.listdir(root + '/faces')):
        rj = f'{root}/x{f}/race/{fid}.json'; pj = f'{root}/x{f}/pulse/{fid}.json'
        if not os.path.exists(rj): continue
        r, p = json.load(open(rj)), json.load(open(pj))
        pr = probs(png(f'{root}/faces/{fid}/thumb{f}.png') * 2 - 1, name)
        agree += races[int(pr.argmax())] == r['target_race']
        rows.append((fid.split('-')[1], float(pr.max()), r, p))
    print(f'x{f}: {len(rows)} faces, recomputed argmax = recorded target on {agree}')
    for t in [0.0, 0.5, 0.6, 0.7, 0.8]:
        line = []
        for c in races:
            sel = [x for x in rows if x[0] == c]
            score = sum((x[2] if x[1] >= t else x[3])['judged']['faceres_race'] == c for x in sel)
            pulse = sum(x[3]['judged']['faceres_race'] == c for x in sel)
            line.append(f'{c} {score/len(sel):.2f}/{pulse/len(sel):.2f}')
        aimed = sum(x[1] >= t for x in rows) / len(rows)
        print(f'  t {t:.1f} aims on {aimed:.2f}:', '  '.join(line))
