# Shared by scripts/run and scripts/test: what WeasyPrint needs to render the 公示 as a PDF
# (api/pages/notice.py) — pango (Debian's libpango-1.0-0 and libpangoft2-1.0-0) and a CJK font
# (Debian's fonts-wqy-microhei). Installed when missing and we are root with apt-get; otherwise a
# note (the PDF download fails and its tests skip; every other page works).
ensure_pdf_libraries() {
  local missing=()
  ldconfig -p 2>/dev/null | grep -q 'libpango-1.0.so.0' || missing+=(libpango-1.0-0)
  ldconfig -p 2>/dev/null | grep -q 'libpangoft2-1.0.so.0' || missing+=(libpangoft2-1.0-0)
  [[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]] || missing+=(fonts-wqy-microhei)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]} (Debian packages) for the 公示's PDF"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; } ||
      say "${missing[*]} could not be installed: the 公示's PDF download will not work"
  else
    say "${missing[*]} missing (apt-get install ${missing[*]}, as root): the 公示's PDF download will not work"
  fi
}
