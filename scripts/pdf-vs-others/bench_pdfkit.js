// pdfkit: the same 1,000-row, ~20-page table report (title, repeated header row,
// zebra rows, "Page i of n" footers), rendered N times; prints documents per second.
// usage: node bench_pdfkit.js ROWS.csv [N=20] [OUT.pdf]
const fs = require('fs');
const PDFDocument = require('pdfkit');

function parseCsv(text) {
  const rows = [];
  let row = [], field = '', q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') q = false;
      else field += c;
    } else if (c === '"') q = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\n') { row.push(field); rows.push(row); row = []; field = ''; }
    else field += c;
  }
  return rows;
}

function render(rows) {
  return new Promise((resolve) => {
    const doc = new PDFDocument({ size: 'A4', margins: { top: 42, left: 42, right: 42, bottom: 10 }, bufferPages: true });
    const chunks = [];
    doc.on('data', (c) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    const W = 595.28, left = 42, right = W - 42, rowH = 13, bottom = 841.89 - 46;
    const weights = [1, 1.4, 1, 1.6, 0.5, 1];
    const total = weights.reduce((a, b) => a + b);
    const xs = []; let x = left;
    for (const w of weights) { const cw = (right - left) * w / total; xs.push([x, cw]); x += cw; }
    const header = ['Date', 'Category', 'Region', 'Description', 'Qty', 'Unit price'];
    let y = 42;
    doc.font('Helvetica-Bold').fontSize(18).text('Sales report', left, y);
    y += 40;
    const drawRow = (cells, bold, bg, fg) => {
      if (bg) doc.rect(left, y, right - left, rowH).fill(bg);
      doc.font(bold ? 'Helvetica-Bold' : 'Helvetica').fontSize(8.5).fillColor(fg);
      cells.forEach((s, i) => {
        const [cx, cw] = xs[i];
        doc.text(s, cx + 4, y + 3, { width: cw - 8, align: i >= 4 ? 'right' : 'left', lineBreak: false, ellipsis: true });
      });
      y += rowH;
    };
    drawRow(header, true, '#334d6e', 'white');
    rows.forEach((r, i) => {
      if (y + rowH > bottom) { doc.addPage(); y = 42; drawRow(header, true, '#334d6e', 'white'); }
      drawRow(r, false, i % 2 ? '#edf2f7' : null, 'black');
    });
    const range = doc.bufferedPageRange();
    for (let i = 0; i < range.count; i++) {
      doc.switchToPage(i);
      doc.font('Helvetica').fontSize(8).fillColor('#666')
        .text(`Page ${i + 1} of ${range.count}`, 0, 841.89 - 30, { width: W, align: 'center', lineBreak: false });
    }
    doc.end();
  });
}

(async () => {
  const rows = parseCsv(fs.readFileSync(process.argv[2], 'utf8')).slice(1);
  const n = parseInt(process.argv[3] || '20', 10);
  const pdf = await render(rows);
  if (process.argv[4]) fs.writeFileSync(process.argv[4], pdf);
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await render(rows);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const med = times[Math.floor(n / 2)];
  console.log(`pdfkit: median ${med.toFixed(1)} ms/doc = ${(1000 / med).toFixed(1)} docs/s (${pdf.length} bytes)`);
})();
