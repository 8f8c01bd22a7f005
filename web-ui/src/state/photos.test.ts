import { describe, expect, it } from 'vitest';
import { checkPhoto, fileSize, firstLine, fitBox, MAX_PHOTO_BYTES, messageSummary, photoProblem, photoSummary, pickImage, sniffImage } from './photos';

const bytes = (...b: (number | string)[]) =>
  new Uint8Array(b.flatMap((x) => (typeof x === 'string' ? Array.from(x, (c) => c.charCodeAt(0)) : [x])));

const PNG = bytes(0x89, 'PNG', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13);
const JPEG = bytes(0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'JFIF');
const GIF = bytes('GIF89a', 1, 0, 1, 0);
const WEBP = bytes('RIFF', 0x24, 0, 0, 0, 'WEBPVP8 ');

describe('sniffImage', () => {
  it('names png, jpeg, gif and webp by their first bytes', () => {
    expect(sniffImage(PNG)).toBe('image/png');
    expect(sniffImage(JPEG)).toBe('image/jpeg');
    expect(sniffImage(GIF)).toBe('image/gif');
    expect(sniffImage(bytes('GIF87a'))).toBe('image/gif');
    expect(sniffImage(WEBP)).toBe('image/webp');
  });

  it('knows nothing else, whatever the name says', () => {
    expect(sniffImage(bytes('hello, this is text'))).toBeNull();
    expect(sniffImage(bytes('RIFF', 0, 0, 0, 0, 'WAVE'))).toBeNull(); // a WAV, not a WebP
    expect(sniffImage(bytes('<svg xmlns="http://www.w3.org/2000/svg">'))).toBeNull();
    expect(sniffImage(new Uint8Array([0x89, 0x50]))).toBeNull(); // cut short
    expect(sniffImage(new Uint8Array())).toBeNull();
  });
});

describe('photoProblem', () => {
  it('accepts an image up to 16 MB', () => {
    expect(photoProblem({ size: 1000, name: 'cat.png' }, PNG)).toBeNull();
    expect(photoProblem({ size: MAX_PHOTO_BYTES }, JPEG)).toBeNull();
  });

  it('says why a file is refused, naming it', () => {
    expect(photoProblem({ size: 19, name: 'x.png' }, bytes('just some text here'))).toBe('“x.png” is not a photo: only PNG, JPEG, GIF and WebP images can be sent.');
    expect(photoProblem({ size: MAX_PHOTO_BYTES + 1, name: 'big.jpg' }, JPEG)).toBe('“big.jpg” is too large (16.0 MB): a photo can be at most 16 MB.');
    expect(photoProblem({ size: 40 * 1024 * 1024, name: 'huge.gif' }, GIF)).toBe('“huge.gif” is too large (40.0 MB): a photo can be at most 16 MB.');
    expect(photoProblem({ size: 0, name: 'empty.png' }, new Uint8Array())).toBe('“empty.png” is empty.');
  });

  it('says "This file" for a file without a name (a paste, the desktop dialog)', () => {
    expect(photoProblem({ size: 4 }, bytes('text'))).toMatch(/^This file is not a photo/);
    expect(photoProblem({ size: 4, name: 'photo' }, bytes('text'))).toMatch(/^This file is not a photo/);
  });

  it('checkPhoto reads the first bytes of a Blob', async () => {
    expect(await checkPhoto(new Blob([PNG, new Uint8Array(100)]))).toBeNull();
    expect(await checkPhoto(new File(['not an image'], 'x.png', { type: 'image/png' }))).toMatch(/“x.png” is not a photo/);
  });
});

describe('fileSize', () => {
  it('reads as KB under a megabyte, MB above', () => {
    expect(fileSize(10)).toBe('1 KB');
    expect(fileSize(812 * 1024)).toBe('812 KB');
    expect(fileSize(1.5 * 1024 * 1024)).toBe('1.5 MB');
    expect(fileSize(17.3 * 1024 * 1024)).toBe('17.3 MB');
    expect(fileSize(240 * 1024 * 1024)).toBe('240 MB');
  });
});

describe('fitBox', () => {
  it('scales down to fit the box, keeping the aspect ratio', () => {
    expect(fitBox(480, 360, 320, 320)).toEqual({ width: 320, height: 240 });
    expect(fitBox(360, 480, 320, 320)).toEqual({ width: 240, height: 320 });
    expect(fitBox(480, 60, 320, 320)).toEqual({ width: 320, height: 40 });
    expect(fitBox(4000, 3000, 1248, 704)).toEqual({ width: 939, height: 704 });
  });

  it('never scales up, and keeps at least a pixel', () => {
    expect(fitBox(100, 50, 320, 320)).toEqual({ width: 100, height: 50 });
    expect(fitBox(8000, 1, 320, 320)).toEqual({ width: 320, height: 1 });
  });

  it('gives the box itself when the size is unknown', () => {
    expect(fitBox(null, 100, 320, 200)).toEqual({ width: 320, height: 200 });
    expect(fitBox(0, 0, 320, 200)).toEqual({ width: 320, height: 200 });
  });
});

describe('pickImage', () => {
  it('takes the first image, else the first file (to be refused with a reason)', () => {
    const txt = { type: 'text/plain', n: 1 };
    const png = { type: 'image/png', n: 2 };
    expect(pickImage([txt, png])).toBe(png);
    expect(pickImage([txt])).toBe(txt);
    expect(pickImage([])).toBeNull();
  });
});

describe('messageSummary', () => {
  it('names a photo, with the first line of its caption', () => {
    expect(photoSummary('')).toBe('Photo');
    expect(photoSummary('  \n Sunset at the lake \nsecond line')).toBe('Photo: Sunset at the lake');
    expect(messageSummary({ kind: 'photo', body: '' })).toBe('📷 Photo');
    expect(messageSummary({ kind: 'photo', body: 'Look!' })).toBe('📷 Photo: Look!');
  });

  it('keeps text and voice as they were', () => {
    expect(messageSummary({ kind: 'text', body: 'hi\nthere' })).toBe('hi\nthere');
    expect(messageSummary({ kind: 'voice', body: '' })).toBe('Voice message');
    expect(firstLine('\n\n  a  \nb')).toBe('a');
  });
});
